"""What every service shares: configuration, Kafka and S3 clients, topic names, record types."""
