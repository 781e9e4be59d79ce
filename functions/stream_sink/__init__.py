"""DynamoDB Streams -> S3 change-log sink (Lambda `handler.handler`) and its export backfill (`backfill`)."""
