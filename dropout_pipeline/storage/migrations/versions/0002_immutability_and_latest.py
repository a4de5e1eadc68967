"""Database-enforced guarantees: insert-only training_data, one latest prediction.

training_data rows are refused any UPDATE or DELETE by a trigger on every engine, so
no code path (ours or a hand-typed SQL) can rewrite a label. predictions may hold only
one `is_latest` row per learner and course: a partial unique index on PostgreSQL and
SQLite; MariaDB has no partial indexes, so a generated column that is 1 for the latest
row and NULL otherwise carries a unique key (NULLs never collide).

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MESSAGE = "training_data is immutable: rows can be inserted, never updated or deleted"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER training_data_no_{action.lower()} BEFORE {action} ON training_data "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )
        op.execute("CREATE UNIQUE INDEX uq_predictions_one_latest ON predictions (user_id, course_id) WHERE is_latest")
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION training_data_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER training_data_immutable BEFORE UPDATE OR DELETE ON training_data "
            "FOR EACH ROW EXECUTE FUNCTION training_data_refuse_change()"
        )
        op.execute("CREATE TRIGGER training_data_no_truncate BEFORE TRUNCATE ON training_data "
                   "FOR EACH STATEMENT EXECUTE FUNCTION training_data_refuse_change()")
        op.execute("CREATE UNIQUE INDEX uq_predictions_one_latest ON predictions (user_id, course_id) WHERE is_latest")
    elif dialect in ("mysql", "mariadb"):
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER training_data_no_{action.lower()} BEFORE {action} ON training_data "
                f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{MESSAGE}'"
            )
        op.execute("ALTER TABLE predictions ADD COLUMN latest_marker TINYINT AS (IF(is_latest, 1, NULL)) PERSISTENT")
        op.execute("CREATE UNIQUE INDEX uq_predictions_one_latest ON predictions (user_id, course_id, latest_marker)")
    else:
        raise NotImplementedError(f"no immutability guarantee written for the {dialect} dialect")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP INDEX uq_predictions_one_latest" + (" ON predictions" if dialect in ("mysql", "mariadb") else ""))
    if dialect == "postgresql":
        op.execute("DROP TRIGGER training_data_immutable ON training_data")
        op.execute("DROP TRIGGER training_data_no_truncate ON training_data")
        op.execute("DROP FUNCTION training_data_refuse_change()")
        return
    if dialect in ("mysql", "mariadb"):
        op.execute("ALTER TABLE predictions DROP COLUMN latest_marker")
    for action in ("update", "delete"):
        op.execute(f"DROP TRIGGER training_data_no_{action}")
