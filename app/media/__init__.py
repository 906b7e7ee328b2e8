"""Images editors upload: checked, resized and stripped once, stored by content hash."""
