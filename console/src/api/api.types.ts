/** The resources as jsona hands them over: attributes flattened, relationships as nested objects. */
export interface Ref {
  type: string;
  id: string;
}

export interface Product {
  type: 'products';
  id: string;
  nombre: string;
  precio: number;
  descripcion: string | null;
  created_at: string;
  updated_at: string;
}

export interface Inventory {
  type: 'inventories';
  id: string;
  producto_id: number;
  cantidad: number;
  reservado: number;
  updated_at: string;
  product?: Product | Ref;
}

export type Causa =
  | 'opening'
  | 'set'
  | 'adjustment'
  | 'purchase'
  | 'cancellation'
  | 'reservation'
  | 'confirmation'
  | 'release'
  | 'expiry';

export interface Movement {
  type: 'inventory-movements';
  id: string;
  producto_id: number;
  causa: Causa;
  delta: number;
  delta_reservado: number;
  cantidad: number;
  reservado: number;
  reason: string | null;
  created_at: string;
  source?: Ref | null;
}

export interface Line {
  producto_id: number;
  cantidad: number;
  precio_unitario?: number;
  total?: number;
}

export interface Purchase {
  type: 'purchases';
  id: string;
  producto_id: number;
  cantidad: number;
  precio_unitario: number;
  total: number;
  estado: 'completada' | 'cancelada';
  cancelada_at: string | null;
  created_at: string;
  order?: Ref | null;
}

export interface Order {
  type: 'orders';
  id: string;
  lineas: Line[];
  total: number;
  estado: string;
  created_at: string;
  cancelado_at: string | null;
}

export interface Reservation {
  type: 'reservations';
  id: string;
  lineas: Line[];
  total: number;
  estado: 'activa' | 'confirmada' | 'cancelada' | 'expirada';
  expira_at: string;
  created_at: string;
  order?: Ref | null;
}
