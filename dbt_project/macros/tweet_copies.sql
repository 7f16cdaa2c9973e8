{#- Which staged copy of each tweet id is kept, shared by tweets_clean (the kept copies) and
    tweets_dropped (every other staged row, with its reason), so the two models cannot
    disagree and together account for every stg_tweets row of a month.

    tweet_copies_ctes() opens a `with` list and defines, for the current month window:
      staged        the rows of every id with a row in the window, in any month, so label
                    agreement and the choice of copy never depend on the window;
      contradictory ids whose copies carry two different labels (every copy is dropped;
                    an unlabelled NULL copy does not contradict a labelled one);
      ranked        the remaining copies with non-empty cleaned text, copy_rank 1 = kept:
                    a labelled copy first, then the earliest, then a fixed source order. -#}
{% macro tweet_copies_ctes() -%}
{%- set windowed = month_window_is_set() %}
with
{%- if windowed %}
-- Ids with a row in the window. Their rows in other months come along; only these rows pay
-- for the text cleaning (the stg_tweets view's cost).
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

contradictory as (
    select tweet_id
    from staged
    group by tweet_id
    having min(label) <> max(label)
),

ranked as (
    select
        *,
        row_number() over (
            partition by tweet_id
            order by label is null, created_at, source, source_row, text_hash
        ) as copy_rank
    from staged
    anti join contradictory using (tweet_id)
    where text <> ''
)
{%- endmacro %}


{#- The columns (and types) tweets_clean and tweets_dropped share: one contract, one list. -#}
{% macro clean_tweet_columns() -%}
    cast(tweet_id as varchar) as tweet_id,
    cast(created_at as timestamp) as created_at,
    cast(month as date) as month,
    cast(text as varchar) as text,
    cast(text_hash as varchar) as text_hash,
    cast(label as integer) as label,
    cast(user_name as varchar) as user_name,
    cast(source as varchar) as source
{%- endmacro %}
