# Contact now lives in mailboxes (mailboxes.0005 took over its state and its table, which
# keeps the name accounts_contact). Dropping it here touches the model state only.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('mailboxes', '0005_contact_from_accounts'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='Contact')],
            database_operations=[],
        ),
    ]
