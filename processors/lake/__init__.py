"""Raw topics → S3 as compressed NDJSON, for replay beyond Kafka retention."""
