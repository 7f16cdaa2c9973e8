{#- No id kept in `model` may carry two different labels anywhere in `staging_model`:
    such duplicates are label noise and tweets_clean must drop every copy. -#}
{% test no_contradictory_labels(model, column_name, staging_model, label_column='label') %}
with contradictory as (
    select {{ column_name }}
    from {{ staging_model }}
    where {{ column_name }} is not null
    group by {{ column_name }}
    having count(distinct {{ label_column }}) > 1
)
select m.{{ column_name }}
from {{ model }} as m
join contradictory as c on m.{{ column_name }} = c.{{ column_name }}
{% endtest %}
