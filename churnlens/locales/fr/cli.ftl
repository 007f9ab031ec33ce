## Mots des tableaux et résumés de la ligne de commande.
catalog-title = Catalogue des variables ({ $version })
column-feature = variable
column-family = famille
column-concept = concept
column-unit = unité
column-risk = risque si
column-description = description
