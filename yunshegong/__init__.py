"""The composition root: the web application (`yunshegong.app`) and the command line (`yunshegong.cli`).

It sits above both layers it wires together: `core` (the domain: models, services, the plugin host) and
`schema` (the GraphQL layer). Neither of those imports this package, and `core` does not import `schema`.
"""
