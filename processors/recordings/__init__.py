"""`callstream recordings`: every answered call's recording, fetched and archived to S3."""
