"""Business rules. Services take a ServiceContext (session, viewer, clock) and never see GraphQL."""
