"""Local AWS for tests, the demo and the replay (dev only: needs moto, samtranslator and cfn-lint).

``template``: template.yaml loaded and translated offline; ``checks``: the translated-template lint;
``aws``: ``LocalAws``, moto in server mode with the template deployed into it.
"""
