// What the stack decides at serve time: config.js beside the bundle sets
// window.PAYCHAOS_CONFIG (the API's base URL and checkout path, the collector's URL).
const served = (typeof window !== 'undefined' && window.PAYCHAOS_CONFIG) || {};

export const config = {
  apiUrl: (served.apiUrl || '').replace(/\/$/, ''),
  checkoutPath: served.checkoutPath || '/api/checkout',
  collectorUrl: (served.collectorUrl || '').replace(/\/$/, ''),
  app: served.app || { name: 'shop-frontend', version: '0.1.0', environment: 'paychaos' },
};
