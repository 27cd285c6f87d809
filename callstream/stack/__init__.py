"""The local development stack: Apache Kafka (KRaft) from Maven Central and SeaweedFS S3."""

from callstream.stack.errors import StackError
from callstream.stack.settings import StackSettings
from callstream.stack.stack import Stack

__all__ = ["Stack", "StackError", "StackSettings"]
