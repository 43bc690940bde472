# Hungarian (hu) translation of en.ftl, the viewer pages: the watch page, its refusals and player
# messages, the TV sign-in page and the phone's approval page. Formal address ("Ön").
# Every message and attribute of en.ftl must be here, and no others.
# Plurals: [one] and *[other]; a noun after a number stays singular ("30 másodperc"), so both
# variants are the same.

## Every page

# The language picker's label.
language = Nyelv
# Shown when the browser runs no JavaScript.
needs-script = Ehhez az oldalhoz JavaScript szükséges.

## The watch page

# The video element's name for screen readers when the show has no title.
player = Videolejátszó
# The badge next to a live show's title.
live = Élő
# The show's watch window under its title ("{ $from } – { $until }").
window = { $from } – { $until }
# The buttons.
continue-here = Megtekintés folytatása itt
retry-now = Újrapróbálkozás most
unmute = Hang bekapcsolása
# The subtitle and audio pickers (shown when the stream carries more than one).
subtitles = Feliratok
subtitles-off = Ki
audio-track = Hang

starting = A műsor indítása…
playing = Lejátszás folyamatban.
press-play = A megtekintés elindításához nyomja meg a „Lejátszás” gombot.
    .button = Lejátszás
reconnecting = Újracsatlakozás…
    .hint = Megszakadt a kapcsolat a videóval; újrapróbálkozunk.
no-connection = A szerver nem érhető el.
    .hint = Újrapróbálkozás { $seconds } { $seconds ->
        [one] másodperc
       *[other] másodperc
    } múlva…
busy = A szolgáltatás jelenleg túlterhelt.
    .hint = Újrapróbálkozás { $seconds } { $seconds ->
        [one] másodperc
       *[other] másodperc
    } múlva…

## Before the show

not-started = A műsor még nem kezdődött el.
    .hint = Ez az oldal automatikusan elindítja, amint elkezdődik.
# { $time }: the date and time the show starts, formatted for the viewer's language.
starts-at = Kezdés: { $time }.
# The countdown's name for screen readers.
countdown = Hátralévő idő a műsor kezdetéig
# The countdown with days: { $clock } is hh:mm:ss.
countdown-days = { $days ->
        [one] { $days } nap
       *[other] { $days } nap
    } { $clock }

## Waiting room (doors-open capacity)

waiting-next = Ön következik a sorban.
waiting-position = Az Ön helye a sorban: { $position }.
waiting = Automatikusan beengedjük: hagyja nyitva ezt az oldalt.
# The estimate before { waiting }: { $seconds } is a multiple of 10 below 90.
waiting-seconds = Még körülbelül { $seconds } { $seconds ->
        [one] másodperc
       *[other] másodperc
    } van hátra. { waiting }
waiting-minutes = Még körülbelül { $minutes } { $minutes ->
        [one] perc
       *[other] perc
    } van hátra. { waiting }

## Another device took the seat

superseded = A lejátszás átkerült egy másik eszközre.
# { $device }: the other device's name, e.g. "Chrome on Android".
superseded-by = A lejátszás átkerült egy másik eszközre ({ $device }).
# { $time }: the time it moved, formatted for the viewer's language.
superseded-by-at = A lejátszás { $time }-kor átkerült egy másik eszközre ({ $device }).
superseded-hint = Ezzel a jeggyel egyszerre csak egy eszközön lehet nézni.
cloned = Ez a jegy egy másik lejátszóban fut, amely ennek a másolata.
    .hint = Ezzel a jeggyel csak egy lejátszóban lehet nézni. A visszavételéhez válassza a „Megtekintés folytatása itt” lehetőséget.
in-use = Ezzel a jeggyel már egy másik eszközön folyik a lejátszás.
    .hint = Ha itt szeretné nézni, állítsa le ott a lejátszást. Újrapróbálkozás { $seconds } { $seconds ->
        [one] másodperc
       *[other] másodperc
    } múlva…

## Refusals, one per problem code of the viewer API

ticket-unknown = Ez a jegylink érvénytelen.
    .hint = Ellenőrizze, hogy a jegyével kapott teljes linket nyitotta-e meg, vagy forduljon a jegy értékesítőjéhez.
no-ticket = Ebben a böngészőben nem található jegy.
    .hint = Nyissa meg újra a jegyével kapott megtekintési linket.
ticket-revoked = Ezt a jegyet visszavonták (érvénytelenítették), így már nem használható megtekintésre.
    .hint = Ha úgy gondolja, hogy ez tévedés, forduljon a jegy értékesítőjéhez.
show-unpublished = Ez a műsor még nem érhető el.
    .hint = A szervező még nem tette közzé. Őrizze meg a megtekintési linkjét, és térjen vissza később.
rate-limited = Túl sok próbálkozás érkezett az Ön kapcsolatáról.
    .hint = Az Ön hálózatáról túl sok ismeretlen jeggyel próbálkoztak. Várjon egy kicsit, majd nyissa meg újra a megtekintési linkjét.
ended = Ez a műsor véget ért.
    .hint = Köszönjük, hogy velünk tartott.
geo-blocked = Ez a műsor nem érhető el az Ön országában.
# { $country }: the country's name in the viewer's language.
geo-blocked-country = Úgy tűnik, a kapcsolata a következő országból érkezik: { $country }. Ez a műsor ott nem érhető el.
geo-blocked-unknown = A kapcsolat helyét nem sikerült megállapítani, ez a műsor pedig csak bizonyos országokban érhető el.
session-ended = A lejátszás ezen az eszközön leállt.
    .hint = Itt újra elkezdheti a megtekintést.
forbidden = Nincs jogosultsága a műsor megtekintéséhez.
refused = Ez a jegy jelenleg nem használható megtekintésre.
    .hint = Kérjük, próbálja újra később.
nothing-to-play = A szerver nem küldött lejátszható tartalmat.
    .hint = Kérjük, próbálja újra később.
unsupported-browser = Ez a böngésző nem tudja lejátszani a műsort.
    .hint = Próbálja meg a Chrome, a Firefox, a Safari vagy az Edge egy friss verziójával.
playback-failed = A lejátszás sikertelen.
    .hint = Ellenőrizze a kapcsolatot, és próbálja újra.

## The TV sign-in page (/tv)

tv-title = Bejelentkezés ezen a tévén
tv-heading = Megtekintés ezen a tévén
tv-step-open = Telefonján nyissa meg a jegyéhez tartozó megtekintési linket.
tv-step-code = Ezután olvassa be ezt a kódot, vagy nyissa meg az alábbi címet, és írja be a kódot:
tv-qr = Az aktiválási oldal QR-kódja, a tévé kódjával előre kitöltve
tv-getting-code = Kód lekérése…
tv-too-many-codes = Túl sok kód erről a hálózatról; várunk egy kicsit…
tv-no-code = Most nem sikerül kódot kérni; újrapróbálkozunk…
tv-waiting = Várakozás a telefonjára…
tv-approved = Jóváhagyva. Indítás…
tv-code-lapsed = A kód lejárt; itt egy új.

## The phone's approval page (/activate)

activate-title = Tévé jóváhagyása
activate-no-ticket = Előbb nyissa meg ezen a telefonon a jegyéhez tartozó megtekintési linket, majd olvassa be újra a tévé kódját.
activate-will-play = A tévé az Ön jegyével ezt a műsort fogja lejátszani:
activate-counts = A jegyéhez tartozó eszközök egyikének számít, és átveheti egy másik eszköz helyét.
activate-own-screen = Csak olyan kódot hagyjon jóvá, amely a saját képernyőjén látható.
activate-code = Kód a tévén
activate-approve = Jóváhagyás
activate-approving = Jóváhagyás folyamatban…
# { $title }: the show's title.
activate-done = Kész: a tévé néhány másodpercen belül elindítja ezt a műsort: „{ $title }”.
activate-code-unknown = Egyetlen tévé sem vár ezzel a kóddal. Ellenőrizze a kódot a tévén, és írja be újra.
activate-failed = Ez nem sikerült; próbálja újra.
activate-no-connection = Nincs kapcsolat; próbálja újra.
