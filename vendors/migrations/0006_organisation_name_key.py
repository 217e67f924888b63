# The column that makes organisation names unique (filled by 0007, constrained by 0008).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('vendors', '0005_idempotency_key_response'),
    ]

    operations = [
        migrations.AddField(
            model_name='organisation',
            name='name_key',
            field=models.CharField(editable=False, max_length=255, null=True),
        ),
    ]
