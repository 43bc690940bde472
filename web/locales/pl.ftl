# Polish (pl) translation of en.ftl, the viewer pages: the watch page, its refusals and player
# messages, the TV sign-in page and the phone's approval page. Informal address ("ty").
# Every message and attribute of en.ftl must be here, and no others.
# Plurals: [one] 1, [few] 2–4 and 22–24…, [many] 0, 5–21, 25–31… (genitive plural),
# *[other] fractions (kept equal to [many]).

## Every page

# The language picker's label.
language = Język
# Shown when the browser runs no JavaScript.
needs-script = Ta strona wymaga JavaScriptu.

## The watch page

# The video element's name for screen readers when the show has no title.
player = Odtwarzacz wideo
# The badge next to a live show's title.
live = Na żywo
# The show's watch window under its title ("{ $from } – { $until }").
window = { $from } – { $until }
# The buttons.
continue-here = Kontynuuj oglądanie tutaj
retry-now = Spróbuj ponownie teraz
unmute = Włącz dźwięk
# The subtitle and audio pickers (shown when the stream carries more than one).
subtitles = Napisy
subtitles-off = Wyłączone
audio-track = Dźwięk

starting = Rozpoczynanie transmisji…
playing = Trwa odtwarzanie.
press-play = Naciśnij „Odtwórz”, aby rozpocząć oglądanie.
    .button = Odtwórz
reconnecting = Ponowne łączenie…
    .hint = Utracono połączenie z wideo; próbujemy ponownie.
no-connection = Nie można połączyć się z serwerem.
    .hint = Ponowna próba za { $seconds } { $seconds ->
        [one] sekundę
        [few] sekundy
        [many] sekund
       *[other] sekund
    }…
busy = Usługa jest teraz przeciążona.
    .hint = Ponowna próba za { $seconds } { $seconds ->
        [one] sekundę
        [few] sekundy
        [many] sekund
       *[other] sekund
    }…

## Before the show

not-started = Wydarzenie jeszcze się nie rozpoczęło.
    .hint = Ta strona uruchomi je automatycznie, gdy się zacznie.
# { $time }: the date and time the show starts, formatted for the viewer's language.
starts-at = Początek: { $time }.
# The countdown's name for screen readers.
countdown = Czas do rozpoczęcia wydarzenia
# The countdown with days: { $clock } is hh:mm:ss.
countdown-days = { $days ->
        [one] { $days } dzień
        [few] { $days } dni
        [many] { $days } dni
       *[other] { $days } dni
    } { $clock }

## Waiting room (doors-open capacity)

waiting-next = Jesteś na pierwszym miejscu w kolejce.
waiting-position = Twoje miejsce w kolejce: { $position }.
waiting = Wpuścimy cię automatycznie: nie zamykaj tej strony.
# The estimate before { waiting }: { $seconds } is a multiple of 10 below 90.
# "około" takes the genitive: około 1 sekundy, około 2/5 sekund.
waiting-seconds = Pozostało około { $seconds } { $seconds ->
        [one] sekundy
        [few] sekund
        [many] sekund
       *[other] sekund
    }. { waiting }
waiting-minutes = Pozostało około { $minutes } { $minutes ->
        [one] minuty
        [few] minut
        [many] minut
       *[other] minut
    }. { waiting }

## Another device took the seat

superseded = Odtwarzanie zostało przeniesione na inne urządzenie.
# { $device }: the other device's name, e.g. "Chrome on Android".
superseded-by = Odtwarzanie zostało przeniesione na inne urządzenie ({ $device }).
# { $time }: the time it moved, formatted for the viewer's language.
superseded-by-at = O { $time } odtwarzanie zostało przeniesione na inne urządzenie ({ $device }).
superseded-hint = Z tym biletem można oglądać jednocześnie tylko na jednym urządzeniu.
cloned = Ten bilet jest odtwarzany w innym odtwarzaczu, który jest kopią tego.
    .hint = Z tym biletem można oglądać tylko w jednym odtwarzaczu. Wybierz „Kontynuuj oglądanie tutaj”, aby go odzyskać.
in-use = Ten bilet jest już odtwarzany na innym urządzeniu.
    .hint = Zatrzymaj tam odtwarzanie, aby oglądać tutaj. Ponowna próba za { $seconds } { $seconds ->
        [one] sekundę
        [few] sekundy
        [many] sekund
       *[other] sekund
    }…

## Refusals, one per problem code of the viewer API

ticket-unknown = Ten link do biletu jest nieprawidłowy.
    .hint = Sprawdź, czy otwierasz pełny link otrzymany razem z biletem, albo skontaktuj się ze sprzedawcą biletów.
no-ticket = W tej przeglądarce nie znaleziono biletu.
    .hint = Ponownie otwórz link do oglądania otrzymany razem z biletem.
ticket-revoked = Ten bilet został unieważniony (anulowany) i nie można go już używać do oglądania.
    .hint = Jeśli uważasz, że to pomyłka, skontaktuj się ze sprzedawcą biletu.
show-unpublished = To wydarzenie nie jest jeszcze dostępne.
    .hint = Organizator jeszcze go nie opublikował. Zachowaj link do oglądania i wróć później.
rate-limited = Zbyt wiele prób z twojego połączenia.
    .hint = Z twojej sieci sprawdzono zbyt wiele nieznanych biletów. Odczekaj chwilę, a potem ponownie otwórz link do oglądania.
ended = To wydarzenie już się zakończyło.
    .hint = Dziękujemy za oglądanie.
geo-blocked = To wydarzenie nie jest dostępne w twoim kraju.
# { $country }: the country's name in the viewer's language.
geo-blocked-country = Wygląda na to, że łączysz się z kraju: { $country }. To wydarzenie nie jest tam oferowane.
geo-blocked-unknown = Nie udało się ustalić lokalizacji twojego połączenia, a to wydarzenie jest oferowane tylko w niektórych krajach.
session-ended = Odtwarzanie na tym urządzeniu zostało zatrzymane.
    .hint = Możesz tutaj ponownie rozpocząć oglądanie.
forbidden = Nie masz uprawnień do oglądania tego wydarzenia.
refused = Tego biletu nie można teraz użyć do oglądania.
    .hint = Spróbuj ponownie później.
nothing-to-play = Serwer nie przesłał nic do odtworzenia.
    .hint = Spróbuj ponownie później.
unsupported-browser = Ta przeglądarka nie może odtworzyć tego wydarzenia.
    .hint = Użyj aktualnej wersji przeglądarki Chrome, Firefox, Safari lub Edge.
playback-failed = Odtwarzanie nie powiodło się.
    .hint = Sprawdź połączenie i spróbuj ponownie.

## The TV sign-in page (/tv)

tv-title = Logowanie na tym telewizorze
tv-heading = Oglądaj na tym telewizorze
tv-step-open = Na telefonie otwórz link do oglądania ze swojego biletu.
tv-step-code = Następnie zeskanuj ten kod albo przejdź pod poniższy adres i wpisz kod:
tv-qr = Kod QR strony aktywacji z już wpisanym kodem tego telewizora
tv-getting-code = Pobieranie kodu…
tv-too-many-codes = Zbyt wiele kodów z tej sieci; czekamy chwilę…
tv-no-code = Nie można teraz pobrać kodu; ponawiamy próbę…
tv-waiting = Czekamy na twój telefon…
tv-approved = Zatwierdzono. Uruchamianie…
tv-code-lapsed = Kod wygasł; oto nowy.

## The phone's approval page (/activate)

activate-title = Zatwierdź telewizor
activate-no-ticket = Najpierw otwórz na tym telefonie link do oglądania ze swojego biletu, a potem ponownie zeskanuj kod z telewizora.
activate-will-play = Telewizor odtworzy to wydarzenie w ramach twojego biletu:
activate-counts = Będzie liczony jako jedno z urządzeń twojego biletu i może zająć miejsce innego urządzenia.
activate-own-screen = Zatwierdzaj tylko kod widoczny na twoim własnym ekranie.
activate-code = Kod na telewizorze
activate-approve = Zatwierdź
activate-approving = Zatwierdzanie…
# { $title }: the show's title.
activate-done = Gotowe: telewizor za kilka sekund uruchomi „{ $title }”.
activate-code-unknown = Żaden telewizor nie czeka z tym kodem. Sprawdź kod na telewizorze i wpisz go ponownie.
activate-failed = Nie udało się; spróbuj ponownie.
activate-no-connection = Brak połączenia; spróbuj ponownie.
