"""Alembic environment: runs on the connection the caller hands over, or on sqlalchemy.url."""

from alembic import context
import sqlalchemy as sa

from dropout_pipeline.storage.schema import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as fresh:
        _run(fresh)
