# The Contact model moves from accounts to mailboxes, which owns the address book. Only
# Django's model state moves: the table keeps its name (accounts_contact) and its rows, so
# no SQL runs. accounts.0002 then drops the model from the accounts state.

import django.db.models.deletion
import django.utils.timezone
import multimail.ids
from django.db import migrations, models


def _move_content_type(apps, from_app, to_app):
    # Permissions point at the content type: moving it keeps what staff were granted.
    content_types = apps.get_model("contenttypes", "ContentType")
    if not content_types.objects.filter(app_label=to_app, model="contact").exists():
        content_types.objects.filter(app_label=from_app, model="contact").update(
            app_label=to_app
        )


def forwards(apps, schema_editor):
    _move_content_type(apps, "accounts", "mailboxes")


def backwards(apps, schema_editor):
    _move_content_type(apps, "mailboxes", "accounts")


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('mailboxes', '0004_inbound_message_once'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Contact',
                    fields=[
                        ('id', models.CharField(default=multimail.ids.new_id, editable=False, max_length=26, primary_key=True, serialize=False)),
                        ('name', models.CharField(max_length=200)),
                        ('email', models.EmailField(max_length=320)),
                        ('tags', models.JSONField(blank=True, default=list)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='contacts', to='accounts.account')),
                    ],
                    options={
                        'db_table': 'accounts_contact',
                        'ordering': ['-id'],
                        'indexes': [models.Index(fields=['account', '-id'], name='accounts_co_account_926573_idx')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
