"""Developer tools, not needed to run a service (the image leaves them out): the local
stack launcher (`callstream stack`), the live demo with its chaos (`callstream run`) and
the image's build and proof (`callstream image`)."""

from callstream.dev.demo.run import COMMAND as RUN
from callstream.dev.image.cli import COMMAND as IMAGE
from callstream.dev.stack.cli import COMMAND as STACK

COMMANDS = (STACK, RUN, IMAGE)
