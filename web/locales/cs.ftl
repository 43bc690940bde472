# Czech (cs) translation of en.ftl, the viewer pages: the watch page, its refusals and player
# messages, the TV sign-in page and the phone's approval page. Formal address ("vy").
# Every message and attribute of en.ftl must be here, and no others.
# Plurals: [one] 1, [few] 2–4, [many] fractions (1,5), *[other] 0 and 5+.

## Every page

# The language picker's label.
language = Jazyk
# Shown when the browser runs no JavaScript.
needs-script = Tato stránka vyžaduje JavaScript.

## The watch page

# The video element's name for screen readers when the show has no title.
player = Přehrávač videa
# The badge next to a live show's title.
live = Živě
# The show's watch window under its title ("{ $from } – { $until }").
window = { $from } – { $until }
# The buttons.
continue-here = Pokračovat ve sledování zde
retry-now = Zkusit znovu hned
unmute = Zapnout zvuk
# The subtitle and audio pickers (shown when the stream carries more than one).
subtitles = Titulky
subtitles-off = Vypnuto
audio-track = Zvuk

starting = Pořad se spouští…
playing = Přehrává se.
press-play = Sledování spustíte tlačítkem „Přehrát“.
    .button = Přehrát
reconnecting = Obnovuje se připojení…
    .hint = Připojení k videu bylo přerušeno; zkoušíme to znovu.
no-connection = Nelze se spojit se serverem.
    .hint = Další pokus za { $seconds } { $seconds ->
        [one] sekundu
        [few] sekundy
        [many] sekundy
       *[other] sekund
    }…
busy = Služba je právě přetížená.
    .hint = Další pokus za { $seconds } { $seconds ->
        [one] sekundu
        [few] sekundy
        [many] sekundy
       *[other] sekund
    }…

## Before the show

not-started = Pořad ještě nezačal.
    .hint = Tato stránka ho spustí, jakmile začne.
# { $time }: the date and time the show starts, formatted for the viewer's language.
starts-at = Začátek: { $time }.
# The countdown's name for screen readers.
countdown = Čas do začátku pořadu
# The countdown with days: { $clock } is hh:mm:ss.
countdown-days = { $days ->
        [one] { $days } den
        [few] { $days } dny
        [many] { $days } dne
       *[other] { $days } dní
    } { $clock }

## Waiting room (doors-open capacity)

waiting-next = Jste další na řadě.
waiting-position = Ve frontě jste na { $position }. místě.
waiting = Dovnitř vás pustíme automaticky: nechte tuto stránku otevřenou.
# The estimate before { waiting }: { $seconds } is a multiple of 10 below 90.
waiting-seconds = { $seconds ->
        [one] Zbývá asi { $seconds } sekunda.
        [few] Zbývají asi { $seconds } sekundy.
        [many] Zbývá asi { $seconds } sekundy.
       *[other] Zbývá asi { $seconds } sekund.
    } { waiting }
waiting-minutes = { $minutes ->
        [one] Zbývá asi { $minutes } minuta.
        [few] Zbývají asi { $minutes } minuty.
        [many] Zbývá asi { $minutes } minuty.
       *[other] Zbývá asi { $minutes } minut.
    } { waiting }

## Another device took the seat

superseded = Přehrávání se přesunulo na jiné zařízení.
# { $device }: the other device's name, e.g. "Chrome on Android".
superseded-by = Přehrávání se přesunulo na jiné zařízení ({ $device }).
# { $time }: the time it moved, formatted for the viewer's language.
superseded-by-at = Přehrávání se v { $time } přesunulo na jiné zařízení ({ $device }).
superseded-hint = S touto vstupenkou může sledovat vždy jen jedno zařízení najednou.
cloned = Tato vstupenka se přehrává v jiném přehrávači, který je kopií tohoto.
    .hint = S touto vstupenkou může sledovat jen jeden přehrávač. Vstupenku získáte zpět volbou „Pokračovat ve sledování zde“.
in-use = Tato vstupenka se už přehrává na jiném zařízení.
    .hint = Chcete-li sledovat zde, ukončete přehrávání tam. Další pokus za { $seconds } { $seconds ->
        [one] sekundu
        [few] sekundy
        [many] sekundy
       *[other] sekund
    }…

## Refusals, one per problem code of the viewer API

ticket-unknown = Tento odkaz na vstupenku není platný.
    .hint = Zkontrolujte, že máte otevřený celý odkaz, který vám přišel se vstupenkou, nebo se obraťte na prodejce vstupenek.
no-ticket = V tomto prohlížeči nebyla nalezena žádná vstupenka.
    .hint = Znovu otevřete odkaz ke sledování, který vám přišel se vstupenkou.
ticket-revoked = Tato vstupenka byla zneplatněna (zrušena) a už ji nelze použít ke sledování.
    .hint = Pokud si myslíte, že jde o chybu, obraťte se na prodejce své vstupenky.
show-unpublished = Tento pořad zatím není dostupný.
    .hint = Pořadatel ho ještě nezveřejnil. Uschovejte si odkaz ke sledování a vraťte se později.
rate-limited = Z vašeho připojení přišlo příliš mnoho pokusů.
    .hint = Z vaší sítě se zkoušelo příliš mnoho neznámých vstupenek. Chvíli počkejte a pak znovu otevřete svůj odkaz ke sledování.
ended = Tento pořad skončil.
    .hint = Děkujeme za sledování.
geo-blocked = Tento pořad není ve vaší zemi dostupný.
# { $country }: the country's name in the viewer's language.
geo-blocked-country = Vaše připojení zřejmě pochází z této země: { $country }. Tam se tento pořad nenabízí.
geo-blocked-unknown = Polohu vašeho připojení se nepodařilo určit a tento pořad se nabízí jen v některých zemích.
session-ended = Přehrávání na tomto zařízení bylo zastaveno.
    .hint = Zde můžete začít sledovat znovu.
forbidden = Ke sledování tohoto pořadu nemáte oprávnění.
refused = Tuto vstupenku teď nelze použít ke sledování.
    .hint = Zkuste to prosím později.
nothing-to-play = Server neposlal nic k přehrání.
    .hint = Zkuste to prosím později.
unsupported-browser = Tento prohlížeč nedokáže pořad přehrát.
    .hint = Zkuste aktuální verzi prohlížeče Chrome, Firefox, Safari nebo Edge.
playback-failed = Přehrávání selhalo.
    .hint = Zkontrolujte připojení a zkuste to znovu.

## The TV sign-in page (/tv)

tv-title = Přihlášení této televize
tv-heading = Sledování na této televizi
tv-step-open = Na telefonu otevřete odkaz ke sledování ze své vstupenky.
tv-step-code = Potom naskenujte tento kód, nebo přejděte na níže uvedenou adresu a zadejte kód:
tv-qr = QR kód aktivační stránky s již vyplněným kódem této televize
tv-getting-code = Získáváme kód…
tv-too-many-codes = Z této sítě bylo vyžádáno příliš mnoho kódů; chvíli čekáme…
tv-no-code = Kód teď nelze získat; zkoušíme to znovu…
tv-waiting = Čekáme na váš telefon…
tv-approved = Schváleno. Spouštíme…
tv-code-lapsed = Platnost kódu vypršela; tady je nový.

## The phone's approval page (/activate)

activate-title = Schválit televizi
activate-no-ticket = Nejdřív na tomto telefonu otevřete odkaz ke sledování ze své vstupenky a pak znovu naskenujte kód z televize.
activate-will-play = Televize na vaši vstupenku přehraje tento pořad:
activate-counts = Počítá se jako jedno ze zařízení vaší vstupenky a může obsadit místo jiného zařízení.
activate-own-screen = Schvalujte jen kód, který vidíte na své vlastní obrazovce.
activate-code = Kód na televizi
activate-approve = Schválit
activate-approving = Schvaluje se…
# { $title }: the show's title.
activate-done = Hotovo: televize za několik sekund spustí pořad „{ $title }“.
activate-code-unknown = S tímto kódem nečeká žádná televize. Zkontrolujte kód na televizi a zadejte ho znovu.
activate-failed = Nepodařilo se; zkuste to znovu.
activate-no-connection = Chybí připojení; zkuste to znovu.
