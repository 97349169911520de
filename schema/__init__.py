"""The GraphQL layer: types, resolvers, context and the schema builder."""
