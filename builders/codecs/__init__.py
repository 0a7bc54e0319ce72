"""builders/codecs."""
