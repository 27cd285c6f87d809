"""The local development stack: Apache Kafka (KRaft) from Maven Central and SeaweedFS S3."""

from callstream.dev.stack.errors import StackError
from callstream.dev.stack.settings import StackSettings
from callstream.dev.stack.stack import Stack

__all__ = ["Stack", "StackError", "StackSettings"]
