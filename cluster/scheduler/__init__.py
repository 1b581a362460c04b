"""The Dask scheduler and the local workers in processes of their own: their certificates
(`certificates`), the entry point of those processes (`child`), how the service starts and
stops them (`process`, `sandbox`), what the scheduler lets each peer do (`guard`), and the
pages its dashboard serves (`pages`). See docs/security.md."""
