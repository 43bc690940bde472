# Slovak (sk) translation of en.ftl, the viewer pages: the watch page, its refusals and player
# messages, the TV sign-in page and the phone's approval page. Formal address ("vy").
# Every message and attribute of en.ftl must be here, and no others.
# Plurals: [one] 1, [few] 2–4, [many] fractions (1,5), *[other] 0 and 5+.

## Every page

# The language picker's label.
language = Jazyk
# Shown when the browser runs no JavaScript.
needs-script = Táto stránka vyžaduje JavaScript.

## The watch page

# The video element's name for screen readers when the show has no title.
player = Prehrávač videa
# The badge next to a live show's title.
live = Naživo
# The show's watch window under its title ("{ $from } – { $until }").
window = { $from } – { $until }
# The buttons.
continue-here = Pokračovať v sledovaní tu
retry-now = Skúsiť znova teraz
unmute = Zapnúť zvuk
# The subtitle and audio pickers (shown when the stream carries more than one).
subtitles = Titulky
subtitles-off = Vypnuté
audio-track = Zvuk

starting = Podujatie sa spúšťa…
playing = Prehráva sa.
press-play = Sledovanie spustíte tlačidlom „Prehrať“.
    .button = Prehrať
reconnecting = Obnovuje sa pripojenie…
    .hint = Pripojenie k videu sa prerušilo; skúšame to znova.
no-connection = Nedá sa spojiť so serverom.
    .hint = Ďalší pokus o { $seconds } { $seconds ->
        [one] sekundu
        [few] sekundy
        [many] sekundy
       *[other] sekúnd
    }…
busy = Služba je momentálne preťažená.
    .hint = Ďalší pokus o { $seconds } { $seconds ->
        [one] sekundu
        [few] sekundy
        [many] sekundy
       *[other] sekúnd
    }…

## Before the show

not-started = Podujatie sa ešte nezačalo.
    .hint = Táto stránka ho spustí, hneď ako sa začne.
# { $time }: the date and time the show starts, formatted for the viewer's language.
starts-at = Začiatok: { $time }.
# The countdown's name for screen readers.
countdown = Čas do začiatku podujatia
# The countdown with days: { $clock } is hh:mm:ss.
countdown-days = { $days ->
        [one] { $days } deň
        [few] { $days } dni
        [many] { $days } dňa
       *[other] { $days } dní
    } { $clock }

## Waiting room (doors-open capacity)

waiting-next = V rade ste na prvom mieste.
waiting-position = V rade ste na { $position }. mieste.
waiting = Dnu vás pustíme automaticky: nechajte túto stránku otvorenú.
# The estimate before { waiting }: { $seconds } is a multiple of 10 below 90.
waiting-seconds = { $seconds ->
        [one] Zostáva asi { $seconds } sekunda.
        [few] Zostávajú asi { $seconds } sekundy.
        [many] Zostáva asi { $seconds } sekundy.
       *[other] Zostáva asi { $seconds } sekúnd.
    } { waiting }
waiting-minutes = { $minutes ->
        [one] Zostáva asi { $minutes } minúta.
        [few] Zostávajú asi { $minutes } minúty.
        [many] Zostáva asi { $minutes } minúty.
       *[other] Zostáva asi { $minutes } minút.
    } { waiting }

## Another device took the seat

superseded = Prehrávanie sa presunulo na iné zariadenie.
# { $device }: the other device's name, e.g. "Chrome on Android".
superseded-by = Prehrávanie sa presunulo na iné zariadenie ({ $device }).
# { $time }: the time it moved, formatted for the viewer's language.
superseded-by-at = Prehrávanie sa o { $time } presunulo na iné zariadenie ({ $device }).
superseded-hint = S touto vstupenkou môže naraz sledovať iba jedno zariadenie.
cloned = Táto vstupenka sa prehráva v inom prehrávači, ktorý je kópiou tohto.
    .hint = S touto vstupenkou môže sledovať iba jeden prehrávač. Vstupenku získate späť voľbou „Pokračovať v sledovaní tu“.
in-use = Táto vstupenka sa už prehráva na inom zariadení.
    .hint = Ak chcete sledovať tu, zastavte prehrávanie tam. Ďalší pokus o { $seconds } { $seconds ->
        [one] sekundu
        [few] sekundy
        [many] sekundy
       *[other] sekúnd
    }…

## Refusals, one per problem code of the viewer API

ticket-unknown = Tento odkaz na vstupenku nie je platný.
    .hint = Skontrolujte, či ste otvorili celý odkaz, ktorý ste dostali so vstupenkou, alebo sa obráťte na predajcu vstupeniek.
no-ticket = V tomto prehliadači sa nenašla žiadna vstupenka.
    .hint = Znova otvorte odkaz na sledovanie, ktorý ste dostali so vstupenkou.
ticket-revoked = Táto vstupenka bola zneplatnená (zrušená) a už sa nedá použiť na sledovanie.
    .hint = Ak si myslíte, že ide o chybu, obráťte sa na predajcu svojej vstupenky.
show-unpublished = Toto podujatie zatiaľ nie je dostupné.
    .hint = Organizátor ho ešte nezverejnil. Odložte si odkaz na sledovanie a vráťte sa neskôr.
rate-limited = Z vášho pripojenia prišlo priveľa pokusov.
    .hint = Z vašej siete sa skúšalo priveľa neznámych vstupeniek. Chvíľu počkajte a potom znova otvorte svoj odkaz na sledovanie.
ended = Toto podujatie sa skončilo.
    .hint = Ďakujeme, že ste sa pozerali.
geo-blocked = Toto podujatie nie je vo vašej krajine dostupné.
# { $country }: the country's name in the viewer's language.
geo-blocked-country = Vaše pripojenie zrejme pochádza z tejto krajiny: { $country }. Tam sa toto podujatie neponúka.
geo-blocked-unknown = Polohu vášho pripojenia sa nepodarilo určiť a toto podujatie sa ponúka iba v niektorých krajinách.
session-ended = Prehrávanie na tomto zariadení bolo zastavené.
    .hint = Sledovanie tu môžete spustiť znova.
forbidden = Na sledovanie tohto podujatia nemáte oprávnenie.
refused = Túto vstupenku teraz nemožno použiť na sledovanie.
    .hint = Skúste to, prosím, neskôr.
nothing-to-play = Server neposlal nič na prehranie.
    .hint = Skúste to, prosím, neskôr.
unsupported-browser = Tento prehliadač nedokáže podujatie prehrať.
    .hint = Skúste aktuálnu verziu prehliadača Chrome, Firefox, Safari alebo Edge.
playback-failed = Prehrávanie zlyhalo.
    .hint = Skontrolujte pripojenie a skúste to znova.

## The TV sign-in page (/tv)

tv-title = Prihlásenie tohto televízora
tv-heading = Sledovanie na tomto televízore
tv-step-open = V telefóne otvorte odkaz na sledovanie zo svojej vstupenky.
tv-step-code = Potom naskenujte tento kód alebo prejdite na adresu nižšie a zadajte kód:
tv-qr = QR kód aktivačnej stránky s už vyplneným kódom tohto televízora
tv-getting-code = Získavame kód…
tv-too-many-codes = Z tejto siete prišlo priveľa žiadostí o kód; chvíľu čakáme…
tv-no-code = Kód sa teraz nedá získať; skúšame to znova…
tv-waiting = Čakáme na váš telefón…
tv-approved = Schválené. Spúšťame…
tv-code-lapsed = Platnosť kódu vypršala; tu je nový.

## The phone's approval page (/activate)

activate-title = Schváliť televízor
activate-no-ticket = Najprv v tomto telefóne otvorte odkaz na sledovanie zo svojej vstupenky a potom znova naskenujte kód z televízora.
activate-will-play = Televízor na vašu vstupenku prehrá toto podujatie:
activate-counts = Počíta sa ako jedno zo zariadení vašej vstupenky a môže obsadiť miesto iného zariadenia.
activate-own-screen = Schvaľujte iba kód, ktorý vidíte na svojej vlastnej obrazovke.
activate-code = Kód na televízore
activate-approve = Schváliť
activate-approving = Schvaľuje sa…
# { $title }: the show's title.
activate-done = Hotovo: televízor o niekoľko sekúnd spustí „{ $title }“.
activate-code-unknown = S týmto kódom nečaká žiadny televízor. Skontrolujte kód na televízore a zadajte ho znova.
activate-failed = Nepodarilo sa; skúste to znova.
activate-no-connection = Chýba pripojenie; skúste to znova.
