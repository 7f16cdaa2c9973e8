{#- Incremental per month: a run rebuilds the months in the dbt vars window
    [min_month, max_month) and leaves every other month alone. The pre-hook clears the
    window first (inside the model's transaction), so a month whose rows all vanished
    upstream is emptied too, which delete+insert on `month` alone would not do. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where {{ month_window_predicate('month') }}{% endif %}"
) }}

{%- set windowed = month_window_is_set() %}

with
{%- if windowed %}
-- Ids with a row in the window. Their rows in other months come along, so label agreement
-- and the choice of copy are judged over all of an id's rows and never depend on the
-- window; only these rows pay for the text cleaning (the stg_tweets view's cost).
window_ids as (
    select distinct tweet_id
    from {{ ref('stg_tweets') }}
    where {{ month_window_predicate('month') }}
),
{%- endif %}

staged as (
    select *
    from {{ ref('stg_tweets') }}
    where tweet_id is not null
    {%- if windowed %}
      and tweet_id in (select tweet_id from window_ids)
    {%- endif %}
),

-- Two different labels on one id is label noise: every copy goes. An unlabelled copy
-- (NULL) does not contradict a labelled one. Judged on all copies, whatever their text.
contradictory as (
    select tweet_id
    from staged
    group by tweet_id
    having min(label) <> max(label)
),

candidates as (
    select *
    from staged
    anti join contradictory using (tweet_id)
    where text <> ''
),

-- One row per id: prefer a labelled copy, then the earliest, then a fixed source order.
deduplicated as (
    select *
    from candidates
    qualify row_number() over (
        partition by tweet_id
        order by label is null, created_at, source, source_row, text_hash
    ) = 1
)

select
    cast(tweet_id as varchar) as tweet_id,
    cast(created_at as timestamp) as created_at,
    cast(month as date) as month,
    cast(text as varchar) as text,
    cast(text_hash as varchar) as text_hash,
    cast(label as integer) as label,
    cast(user_name as varchar) as user_name,
    cast(source as varchar) as source
from deduplicated
where {{ month_window_predicate('month') }}
