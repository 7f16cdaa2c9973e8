{#- The month window of a tweets_clean run: month >= var('min_month') and
    month < var('max_month'), each bound optional; no bounds = every month. Used both to
    select the rows and to clear the window in the target first, so the two always agree. -#}
{% macro _month_window_bound(name) -%}
    {%- set value = var(name, none) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {{ return(none) }}
    {%- endif -%}
    {#- YAML may hand over a date object; its str() is the ISO form we check for. -#}
    {%- set text = value | string | trim -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) -%}
        {{ exceptions.raise_compiler_error("var '" ~ name ~ "' must be an ISO date YYYY-MM-DD, got: " ~ text) }}
    {%- endif -%}
    {{ return(text) }}
{%- endmacro %}

{% macro month_window_predicate(column='month') -%}
    {%- set lo = _month_window_bound('min_month') -%}
    {%- set hi = _month_window_bound('max_month') -%}
    {%- set parts = [] -%}
    {%- if lo is not none -%}{%- do parts.append(column ~ " >= date '" ~ lo ~ "'") -%}{%- endif -%}
    {%- if hi is not none -%}{%- do parts.append(column ~ " < date '" ~ hi ~ "'") -%}{%- endif -%}
    {%- if parts -%}({{ parts | join(' and ') }}){%- else -%}(true){%- endif -%}
{%- endmacro %}

{% macro month_window_is_set() -%}
    {{ return(_month_window_bound('min_month') is not none or _month_window_bound('max_month') is not none) }}
{%- endmacro %}
