# Organisation names are unique by their key (case, spacing and Unicode form ignored).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('vendors', '0007_organisation_name_key_fill'),
    ]

    operations = [
        migrations.AlterField(
            model_name='organisation',
            name='name_key',
            field=models.CharField(editable=False, max_length=255),
        ),
        migrations.AddConstraint(
            model_name='organisation',
            constraint=models.UniqueConstraint(fields=('name_key',), name='organisation_name_unique'),
        ),
    ]
