"""`gesticulator view`: a local, offline web page that plays an output folder (three.js)."""
