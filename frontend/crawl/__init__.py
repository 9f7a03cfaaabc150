"""POST /api/crawl: a real Chromium behind a filtering proxy."""
