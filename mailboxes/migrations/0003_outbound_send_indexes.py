# The indexes of the sending quota and warm-up counts. Built concurrently: the email table
# is the largest one, and a plain CREATE INDEX would block every write to it meanwhile.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('mailboxes', '0002_storage_usage'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='email',
            index=models.Index(condition=models.Q(('direction', 'outbound')), fields=['account', 'received_at'], include=('status',), name='email_outbound_by_account'),
        ),
        AddIndexConcurrently(
            model_name='email',
            index=models.Index(condition=models.Q(('direction', 'outbound')), fields=['mailbox', 'received_at'], include=('status',), name='email_outbound_by_mailbox'),
        ),
    ]
