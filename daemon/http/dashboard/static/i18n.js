/* heliod dashboard labels, English and French: keys are used by app.js and data-i18n. */
window.heliodText = {
  en: {
    title: "Solar plant", token_prompt: "API token", token_submit: "Open",
    token_invalid: "This token was refused.", footer: "heliod — data refreshes by itself",
    updated: "Updated", offline: "Cannot reach heliod; showing the last data received.",
    lifetime: "Lifetime energy", completed: "MWh completed", next: "Toward the next MWh",
    minted: "Tokens minted", undistributed: "Undistributed", power_today: "Power today",
    energy_days: "Energy per day (30 days)", backers: "Backers' balances",
    search: "Search a backer", backer: "Backer", balance: "Balance",
    devices: "Devices", last_reading: "Last reading: ", never: "never",
    more: "{n} more: refine the search", none: "No backer yet", power: "Power (kW)",
    energy: "Energy (kWh)", state_ok: "OK", state_stale: "Stale", state_error: "Error",
    state_clock: "Clock ahead",
    remaining: "{kwh} kWh to go", capacity: "Capacity", no_data: "No data yet today"
  },
  fr: {
    title: "Centrale solaire", token_prompt: "Jeton d'API", token_submit: "Ouvrir",
    token_invalid: "Ce jeton a été refusé.", footer: "heliod — les données se mettent à jour seules",
    updated: "Mis à jour", offline: "heliod injoignable ; dernières données reçues affichées.",
    lifetime: "Énergie totale", completed: "MWh produits", next: "Vers le prochain MWh",
    minted: "Jetons émis", undistributed: "Non distribués", power_today: "Puissance aujourd'hui",
    energy_days: "Énergie par jour (30 jours)", backers: "Soldes des contributeurs",
    search: "Chercher un contributeur", backer: "Contributeur", balance: "Solde",
    devices: "Appareils", last_reading: "Dernière mesure : ", never: "jamais",
    more: "{n} de plus : affinez la recherche", none: "Aucun contributeur", power: "Puissance (kW)",
    energy: "Énergie (kWh)", state_ok: "OK", state_stale: "Muet", state_error: "Erreur",
    state_clock: "Horloge en avance",
    remaining: "encore {kwh} kWh", capacity: "Puissance installée", no_data: "Pas encore de données aujourd'hui"
  }
};
