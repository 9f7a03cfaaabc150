"""Vision-language chat: prompted captions and visual questions on the caption task."""
