"""Names the change log's writers (the stream sink, its redrive, the backfill) and its reader (the
pipeline's parsing) must agree on, beyond the fields of data contract section 1."""

# A line written for a stream record (or export item) that could not be converted carries this field,
# holding the error and the record itself; the pipeline quarantines such a line whole (rule 1).
UNCONVERTIBLE_FIELD = "unconvertible"
UNCONVERTIBLE_REASON = "unconvertible_record"
