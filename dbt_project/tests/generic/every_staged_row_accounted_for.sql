{#- Per month and source of the dbt vars window, every staged row is either the copy kept in
    `kept_model` or a row of `model` (the dropped rows): staged = kept + dropped. A row lost
    between stg_tweets and the clean layer, or recorded twice, fails this. -#}
{% test every_staged_row_accounted_for(model, staging_model, kept_model) %}
with
{%- for name, relation in [('staged', staging_model), ('kept', kept_model), ('dropped', model)] %}
{{ name }} as (
    select month, source, count(*) as n
    from {{ relation }}
    where {{ month_window_predicate('month') }}
    group by month, source
),
{%- endfor %}
keys as (
    select month, source from staged
    union
    select month, source from kept
    union
    select month, source from dropped
)
select
    k.month,
    k.source,
    coalesce(s.n, 0) as staged_rows,
    coalesce(c.n, 0) as kept_rows,
    coalesce(d.n, 0) as dropped_rows
from keys as k
left join staged as s on s.month is not distinct from k.month and s.source is not distinct from k.source
left join kept as c on c.month is not distinct from k.month and c.source is not distinct from k.source
left join dropped as d on d.month is not distinct from k.month and d.source is not distinct from k.source
where coalesce(s.n, 0) <> coalesce(c.n, 0) + coalesce(d.n, 0)
{% endtest %}
