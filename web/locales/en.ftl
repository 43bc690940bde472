# Usher's viewer pages: the watch page, its refusals and player messages, the TV sign-in page and the
# phone's approval page. English is the source and the fallback: every other language must have every
# message and attribute of this file (a test fails when one is missing or has one too many).
#
# Translators: edit only the text after "=". Keep { $variables } as they are; reorder them freely.
# Plurals use CLDR categories: [one], [few], [many], *[other] (the one with * is the default).

## Every page

# The language picker's label.
language = Language
# Shown when the browser runs no JavaScript.
needs-script = This page needs JavaScript.

## The watch page

# The video element's name for screen readers when the show has no title.
player = Video player
# The badge next to a live show's title.
live = Live
# The show's watch window under its title ("{ $from } – { $until }").
window = { $from } – { $until }
# The buttons.
continue-here = Continue watching here
retry-now = Try again now
unmute = Unmute
# The subtitle and audio pickers (shown when the stream carries more than one).
subtitles = Subtitles
subtitles-off = Off
audio-track = Audio

starting = Starting the show…
playing = Playing.
press-play = Press play to start watching.
    .button = Play
reconnecting = Reconnecting…
    .hint = The connection to the video was lost; trying again.
no-connection = Cannot reach the server.
    .hint = Trying again in { $seconds } { $seconds ->
        [one] second
       *[other] seconds
    }…
busy = The service is busy right now.
    .hint = Trying again in { $seconds } { $seconds ->
        [one] second
       *[other] seconds
    }…

## Before the show

not-started = The show has not started yet.
    .hint = This page will start it when it begins.
# { $time }: the date and time the show starts, formatted for the viewer's language.
starts-at = It starts at { $time }.
# The countdown's name for screen readers.
countdown = Time until the show starts
# The countdown with days: { $clock } is hh:mm:ss.
countdown-days = { $days ->
        [one] { $days } day
       *[other] { $days } days
    } { $clock }

## Waiting room (doors-open capacity)

waiting-next = You are next in line.
waiting-position = You are number { $position } in line.
waiting = You will be let in automatically: keep this page open.
# The estimate before { waiting }: { $seconds } is a multiple of 10 below 90.
waiting-seconds = About { $seconds } { $seconds ->
        [one] second
       *[other] seconds
    } to go. { waiting }
waiting-minutes = About { $minutes } { $minutes ->
        [one] minute
       *[other] minutes
    } to go. { waiting }

## Another device took the seat

superseded = Playback moved to another device.
# { $device }: the other device's name, e.g. "Chrome on Android".
superseded-by = Playback moved to another device ({ $device }).
# { $time }: the time it moved, formatted for the viewer's language.
superseded-by-at = Playback moved to another device ({ $device }) at { $time }.
superseded-hint = Only one device can watch with this ticket at a time.
cloned = This ticket is playing in another player that copied this one.
    .hint = Only one player can watch with this ticket. Choose “Continue watching here” to take it back.
in-use = This ticket is already playing on another device.
    .hint = Stop it there to watch here. Trying again in { $seconds } { $seconds ->
        [one] second
       *[other] seconds
    }…

## Refusals, one per problem code of the viewer API

ticket-unknown = This ticket link is not valid.
    .hint = Check that you opened the complete link you received with your ticket, or contact the ticket seller.
no-ticket = No ticket was found in this browser.
    .hint = Open the watch link you received with your ticket again.
ticket-revoked = This ticket has been revoked (cancelled) and can no longer be used to watch.
    .hint = If you think this is a mistake, contact the seller of your ticket.
show-unpublished = This show is not available yet.
    .hint = The organiser has not published it. Keep your watch link and come back later.
rate-limited = Too many attempts from your connection.
    .hint = Too many unknown tickets were tried from your network. Wait a moment, then open your watch link again.
ended = This show has ended.
    .hint = Thank you for watching.
geo-blocked = This show is not available in your country.
# { $country }: the country's name in the viewer's language.
geo-blocked-country = Your connection appears to come from { $country }, where this show is not offered.
geo-blocked-unknown = The location of your connection could not be determined, and this show is only offered in some countries.
session-ended = Playback was stopped on this device.
    .hint = You can start watching again here.
forbidden = You are not allowed to watch this show.
refused = This ticket cannot be used to watch right now.
    .hint = Please try again later.
nothing-to-play = The server did not send anything to play.
    .hint = Please try again later.
unsupported-browser = This browser cannot play the show.
    .hint = Try a recent Chrome, Firefox, Safari or Edge.
playback-failed = Playback failed.
    .hint = Check your connection and try again.

## The TV sign-in page (/tv)

tv-title = Sign in this TV
tv-heading = Watch on this TV
tv-step-open = On your phone, open the watch link from your ticket.
tv-step-code = Then scan this code, or go to the address below and type the code:
tv-qr = QR code of the activation page, with this TV's code filled in
tv-getting-code = Getting a code…
tv-too-many-codes = Too many codes from this network; waiting a moment…
tv-no-code = Cannot get a code now; trying again…
tv-waiting = Waiting for your phone…
tv-approved = Approved. Starting…
tv-code-lapsed = The code lapsed; here is a new one.

## The phone's approval page (/activate)

activate-title = Approve a TV
activate-no-ticket = Open the watch link from your ticket on this phone first, then scan the TV's code again.
activate-will-play = The TV will play this show on your ticket:
activate-counts = It counts as one of your ticket's devices, and may take the seat of another one.
activate-own-screen = Only approve a code that is on your own screen.
activate-code = Code on the TV
activate-approve = Approve
activate-approving = Approving…
# { $title }: the show's title.
activate-done = Done: the TV starts { $title } in a few seconds.
activate-code-unknown = No TV is waiting with this code. Check the code on the TV and type it again.
activate-failed = This did not work; try again.
activate-no-connection = No connection; try again.
