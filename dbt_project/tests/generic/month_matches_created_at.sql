{#- The month partition must be the calendar month of created_at: models train and are
    evaluated month by month, so a row in the wrong partition leaks across the split. -#}
{% test month_matches_created_at(model, month_column='month', timestamp_column='created_at') %}
select *
from {{ model }}
where {{ month_column }} is distinct from cast(date_trunc('month', {{ timestamp_column }}) as date)
{% endtest %}
