# The per-account stored-bytes counter, filled from the current sums.

from collections import defaultdict

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Sum


def backfill(apps, schema_editor):
    Email = apps.get_model("mailboxes", "Email")
    Attachment = apps.get_model("mailboxes", "Attachment")
    StorageUsage = apps.get_model("mailboxes", "StorageUsage")
    totals = defaultdict(int)
    bodies = (
        Email.objects.order_by()
        .values("account_id")
        .annotate(total=Sum("size_bytes"))
        .values_list("account_id", "total")
    )
    files = (
        Attachment.objects.order_by()
        .values("email__account_id")
        .annotate(total=Sum("size"))
        .values_list("email__account_id", "total")
    )
    for rows in (bodies, files):
        for account_id, total in rows.iterator():
            totals[account_id] += int(total or 0)
    StorageUsage.objects.bulk_create(
        (StorageUsage(account_id=pk, used_bytes=total) for pk, total in totals.items()),
        batch_size=1000,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('mailboxes', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='StorageUsage',
            fields=[
                ('account', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='storage_usage', serialize=False, to='accounts.account')),
                ('used_bytes', models.BigIntegerField(default=0)),
            ],
        ),
        # Writes made between this backfill and the deploy of the code that keeps the
        # counter are picked up by the storage_reconcile command.
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
