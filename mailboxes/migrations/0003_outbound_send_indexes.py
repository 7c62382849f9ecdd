# The indexes of the sending quota and warm-up counts. Built concurrently: the email table
# is the largest one, and a plain CREATE INDEX would block every write to it meanwhile
# (SQLite, the embedded default, builds them plainly).

from django.db import migrations, models

from multimail.migration_operations import AddIndexConcurrentlyWherePossible


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('mailboxes', '0002_storage_usage'),
    ]

    operations = [
        AddIndexConcurrentlyWherePossible(
            model_name='email',
            index=models.Index(condition=models.Q(('direction', 'outbound')), fields=['account', 'received_at'], include=('status',), name='email_outbound_by_account'),
        ),
        AddIndexConcurrentlyWherePossible(
            model_name='email',
            index=models.Index(condition=models.Q(('direction', 'outbound')), fields=['mailbox', 'received_at'], include=('status',), name='email_outbound_by_mailbox'),
        ),
    ]
