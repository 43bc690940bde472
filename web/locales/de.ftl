# German (de) translation of en.ftl, the viewer pages: the watch page, its refusals and player
# messages, the TV sign-in page and the phone's approval page. Formal address ("Sie").
# Every message and attribute of en.ftl must be here, and no others.

## Every page

# The language picker's label.
language = Sprache
# Shown when the browser runs no JavaScript.
needs-script = Diese Seite benötigt JavaScript.

## The watch page

# The video element's name for screen readers when the show has no title.
player = Videoplayer
# The badge next to a live show's title.
live = Live
# The show's watch window under its title ("{ $from } – { $until }").
window = { $from } – { $until }
# The buttons.
continue-here = Hier weiterschauen
retry-now = Jetzt erneut versuchen
unmute = Ton einschalten
# The subtitle and audio pickers (shown when the stream carries more than one).
subtitles = Untertitel
subtitles-off = Aus
audio-track = Audio

starting = Die Übertragung startet…
playing = Wiedergabe läuft.
press-play = Drücken Sie auf „Abspielen“, um mit dem Ansehen zu beginnen.
    .button = Abspielen
reconnecting = Verbindung wird wiederhergestellt…
    .hint = Die Verbindung zum Video wurde unterbrochen; neuer Versuch läuft.
no-connection = Der Server ist nicht erreichbar.
    .hint = Neuer Versuch in { $seconds } { $seconds ->
        [one] Sekunde
       *[other] Sekunden
    }…
busy = Der Dienst ist gerade ausgelastet.
    .hint = Neuer Versuch in { $seconds } { $seconds ->
        [one] Sekunde
       *[other] Sekunden
    }…

## Before the show

not-started = Die Veranstaltung hat noch nicht begonnen.
    .hint = Diese Seite startet sie automatisch, sobald sie beginnt.
# { $time }: the date and time the show starts, formatted for the viewer's language.
starts-at = Beginn: { $time }.
# The countdown's name for screen readers.
countdown = Zeit bis zum Beginn der Veranstaltung
# The countdown with days: { $clock } is hh:mm:ss.
countdown-days = { $days ->
        [one] { $days } Tag
       *[other] { $days } Tage
    } { $clock }

## Waiting room (doors-open capacity)

waiting-next = Sie sind als Nächstes an der Reihe.
waiting-position = Sie sind auf Platz { $position } der Warteschlange.
waiting = Sie werden automatisch eingelassen: Lassen Sie diese Seite geöffnet.
# The estimate before { waiting }: { $seconds } is a multiple of 10 below 90.
waiting-seconds = Noch etwa { $seconds } { $seconds ->
        [one] Sekunde
       *[other] Sekunden
    }. { waiting }
waiting-minutes = Noch etwa { $minutes } { $minutes ->
        [one] Minute
       *[other] Minuten
    }. { waiting }

## Another device took the seat

superseded = Die Wiedergabe ist auf ein anderes Gerät gewechselt.
# { $device }: the other device's name, e.g. "Chrome on Android".
superseded-by = Die Wiedergabe ist auf ein anderes Gerät gewechselt ({ $device }).
# { $time }: the time it moved, formatted for the viewer's language.
superseded-by-at = Die Wiedergabe ist um { $time } auf ein anderes Gerät gewechselt ({ $device }).
superseded-hint = Mit diesem Ticket kann immer nur ein Gerät gleichzeitig zuschauen.
cloned = Dieses Ticket wird in einem anderen Player abgespielt, der von diesem kopiert wurde.
    .hint = Mit diesem Ticket kann nur ein Player zuschauen. Wählen Sie „Hier weiterschauen“, um es zurückzuholen.
in-use = Dieses Ticket wird bereits auf einem anderen Gerät abgespielt.
    .hint = Beenden Sie die Wiedergabe dort, um hier zuzuschauen. Neuer Versuch in { $seconds } { $seconds ->
        [one] Sekunde
       *[other] Sekunden
    }…

## Refusals, one per problem code of the viewer API

ticket-unknown = Dieser Ticket-Link ist ungültig.
    .hint = Prüfen Sie, ob Sie den vollständigen Link geöffnet haben, den Sie mit Ihrem Ticket erhalten haben, oder wenden Sie sich an den Ticketverkäufer.
no-ticket = In diesem Browser wurde kein Ticket gefunden.
    .hint = Öffnen Sie erneut den Link zum Ansehen, den Sie mit Ihrem Ticket erhalten haben.
ticket-revoked = Dieses Ticket wurde widerrufen (storniert) und kann nicht mehr zum Ansehen verwendet werden.
    .hint = Wenn Sie glauben, dass es sich um einen Fehler handelt, wenden Sie sich an den Verkäufer Ihres Tickets.
show-unpublished = Diese Veranstaltung ist noch nicht verfügbar.
    .hint = Der Veranstalter hat sie noch nicht veröffentlicht. Bewahren Sie Ihren Link zum Ansehen auf und schauen Sie später wieder vorbei.
rate-limited = Zu viele Versuche von Ihrer Verbindung.
    .hint = Aus Ihrem Netzwerk wurden zu viele unbekannte Tickets ausprobiert. Warten Sie einen Moment und öffnen Sie dann Ihren Link zum Ansehen erneut.
ended = Diese Veranstaltung ist beendet.
    .hint = Vielen Dank fürs Zuschauen.
geo-blocked = Diese Veranstaltung ist in Ihrem Land nicht verfügbar.
# { $country }: the country's name in the viewer's language.
geo-blocked-country = Ihre Verbindung scheint aus diesem Land zu kommen: { $country }. Dort wird diese Veranstaltung nicht angeboten.
geo-blocked-unknown = Der Standort Ihrer Verbindung konnte nicht ermittelt werden, und diese Veranstaltung wird nur in bestimmten Ländern angeboten.
session-ended = Die Wiedergabe auf diesem Gerät wurde beendet.
    .hint = Sie können hier erneut mit dem Ansehen beginnen.
forbidden = Sie sind nicht berechtigt, diese Veranstaltung anzusehen.
refused = Dieses Ticket kann derzeit nicht zum Ansehen verwendet werden.
    .hint = Bitte versuchen Sie es später erneut.
nothing-to-play = Der Server hat nichts zum Abspielen gesendet.
    .hint = Bitte versuchen Sie es später erneut.
unsupported-browser = Dieser Browser kann die Veranstaltung nicht abspielen.
    .hint = Verwenden Sie eine aktuelle Version von Chrome, Firefox, Safari oder Edge.
playback-failed = Die Wiedergabe ist fehlgeschlagen.
    .hint = Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.

## The TV sign-in page (/tv)

tv-title = Diesen Fernseher anmelden
tv-heading = Auf diesem Fernseher ansehen
tv-step-open = Öffnen Sie auf Ihrem Smartphone den Link zum Ansehen aus Ihrem Ticket.
tv-step-code = Scannen Sie dann diesen Code, oder rufen Sie die unten stehende Adresse auf und geben Sie den Code ein:
tv-qr = QR-Code der Aktivierungsseite, mit bereits eingetragenem Code dieses Fernsehers
tv-getting-code = Code wird abgerufen…
tv-too-many-codes = Zu viele Codes aus diesem Netzwerk; einen Moment bitte…
tv-no-code = Derzeit kann kein Code abgerufen werden; neuer Versuch…
tv-waiting = Warten auf Ihr Smartphone…
tv-approved = Freigegeben. Wird gestartet…
tv-code-lapsed = Der Code ist abgelaufen; hier ist ein neuer.

## The phone's approval page (/activate)

activate-title = Fernseher freigeben
activate-no-ticket = Öffnen Sie zuerst auf diesem Smartphone den Link zum Ansehen aus Ihrem Ticket und scannen Sie dann erneut den Code des Fernsehers.
activate-will-play = Der Fernseher spielt diese Veranstaltung mit Ihrem Ticket ab:
activate-counts = Er zählt als eines der Geräte Ihres Tickets und kann den Platz eines anderen Geräts einnehmen.
activate-own-screen = Geben Sie nur einen Code frei, der auf Ihrem eigenen Bildschirm angezeigt wird.
activate-code = Code auf dem Fernseher
activate-approve = Freigeben
activate-approving = Wird freigegeben…
# { $title }: the show's title.
activate-done = Fertig: Der Fernseher startet „{ $title }“ in wenigen Sekunden.
activate-code-unknown = Kein Fernseher wartet mit diesem Code. Prüfen Sie den Code auf dem Fernseher und geben Sie ihn erneut ein.
activate-failed = Das hat nicht funktioniert; bitte versuchen Sie es erneut.
activate-no-connection = Keine Verbindung; bitte versuchen Sie es erneut.
