"""Developer tools, not needed to run a service (the image leaves them out): the local
stack launcher (`callstream stack`) and the live demo with its chaos (`callstream run`)."""

from callstream.dev.demo.run import COMMAND as RUN
from callstream.dev.stack.cli import COMMAND as STACK

COMMANDS = (STACK, RUN)
