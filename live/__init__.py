"""meshstream live: a camera, a stream or a file fitted frame by frame, with a preview page
(``meshstream live``; docs/live.md)."""
