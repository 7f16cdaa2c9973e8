{#- A model's `+schema` is used as is (`staging`, not `main_staging`): the warehouse has one
    writer and one target, and Dagster, the app and users query these names directly. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
