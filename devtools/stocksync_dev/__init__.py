"""stocksync's tools for people: the Commerce Platform simulator, the local AWS stack (moto server with
template.yaml deployed) and the ``stocksync`` command line. They depend on the runtime package ``stocksync``; the
runtime never imports them, and the Lambda layer never carries them."""
