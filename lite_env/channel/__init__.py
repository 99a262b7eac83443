"""The wasm conda channel: build recipes/ into channel/, index it, serve it."""
