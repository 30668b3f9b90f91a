"""LongMT memory tools: view_summaries, view_pages and lookup_entities read memory of earlier
pages; update_summaries and update_entities are the model calls that write it."""
