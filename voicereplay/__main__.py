"""``python -m voicereplay``: the same as the ``voicereplay`` command."""

from voicereplay.cli import main

main()
