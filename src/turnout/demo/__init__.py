"""Demos: backends that say who they are (`echo`) and the Star Wars demo (`starwars`).

Not part of the pipeline: they exist to show turnout working, on one machine, with no
cluster. Nothing in the pipeline imports this package.
"""
