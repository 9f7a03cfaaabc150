"""The admin web page: plain HTML/CSS/JS served by the frontend (no build step, no CDN)."""
