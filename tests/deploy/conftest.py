from tests.store.fixtures import pg_base, pg_url, sqlite_url, store, store_url

__all__ = ["pg_base", "pg_url", "sqlite_url", "store", "store_url"]
