"""One score page: images and PDF pages, staves, inference at the training scale, reconstruction of thin symbols, reading the music (notes, MusicXML)."""
