"""SMART on FHIR for the client side: discovery, backend services (client_credentials with a signed JWT),
the app launch's authorization code with PKCE and refresh, and the bearer auth that sends their tokens."""
