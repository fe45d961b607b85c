"""The intake service: reports in → registered cases, merged duplicates or rejections (DOMAIN.md steps 1–2)."""
